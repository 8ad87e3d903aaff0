//! Relay mode: against a fake broker (link), and against RabbitMQ / ActiveMQ (scale-out,
//! fault: a private broker node the test scripts start).

#[path = "../common/mod.rs"]
mod common;
mod support;

mod fault;
mod link;
mod scaleout;
