//! Relay and cluster mode: against a fake broker (link), and against RabbitMQ / ActiveMQ (scale-out,
//! fault: a private broker node the test scripts start).

#[path = "../common/mod.rs"]
mod common;
mod engine_process;
mod support;

mod cluster;
mod fault;
mod link;
mod scaleout;
