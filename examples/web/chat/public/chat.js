// wsbroker chat demo: @stomp/stompjs over a plain WebSocket or over SockJS.
//
// With the broker's history on for the rooms (`--history '/topic/chat/**=200,1h'`) a page that
// joins a room gets its last 50 messages (`x-last`), and one that reconnects resumes exactly
// where it stopped (`x-since`/`x-epoch`, see ../vendor/stomp-resume.js). The members list and
// the join/leave lines come from the broker's presence (`x-presence:true`): a tab that closes
// without saying goodbye still leaves.
//
// The page is served by the broker itself (`wsbroker --static DIR`), so the broker endpoints
// derive from `location`: ws(s)://HOST/ws for WebSocket and http(s)://HOST/sockjs for SockJS.
//
// Query parameters (all optional):
//   via=websocket|sockjs      preselects the transport toggle
//   transports=a,b            SockJS transports to allow, e.g. `xhr-streaming` (implies via=sockjs)
//   broker=ws://HOST/ws       WebSocket URL override (page served from elsewhere)
//   sockjs=http://HOST/sockjs SockJS URL override
//   nick=NAME, room=N         prefill the nickname and the room to join after connecting
//   debug                     log STOMP frames to the console
'use strict';

(() => {
  const ROOM_SHORTCUTS = 9;
  const MAX_ROOM = 9999;
  const MAX_NICK = 32;
  const MAX_TEXT = 2000;
  const MAX_LINES = 500; // older lines are dropped so a long session keeps a small DOM
  const RECONNECT_DELAY_MS = 3000;
  const BACKLOG = 50; // messages a page gets when it joins a room (x-last)
  const HEARTBEAT_MS = 10000;
  const NICK_STORAGE_KEY = 'wsbroker-chat-nickname';

  const $ = (id) => document.getElementById(id);
  const ui = {
    connectForm: $('connect-form'),
    nickname: $('nickname'),
    connect: $('connect'),
    disconnect: $('disconnect'),
    status: $('status'),
    roomList: $('room-list'),
    roomForm: $('room-form'),
    roomNumber: $('room-number'),
    roomTitle: $('room-title'),
    messages: $('messages'),
    sendForm: $('send-form'),
    message: $('message'),
    send: $('send'),
    members: $('members'),
    memberCount: $('member-count'),
  };

  const params = new URLSearchParams(location.search);
  const wsScheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const config = {
    wsUrl: params.get('broker') || `${wsScheme}//${location.host}/ws`,
    sockjsUrl: params.get('sockjs') || `${location.protocol}//${location.host}/sockjs`,
    sockjsTransports: parseList(params.get('transports')),
    debug: params.has('debug'),
  };
  // Distinguishes this tab's own messages from others that use the same nickname.
  const clientId = randomId();

  const state = {
    client: null, // StompJs.Client while connected or reconnecting
    nick: '',
    socket: null, // the WebSocket or SockJS object of the current connection
    room: null, // the room the user chose (number), joined or about to be joined
    subscription: null,
    joinSeq: 0,
    joined: new Set(), // rooms this tab joined since connecting (a later join is a rejoin)
    // Positions per room (x-offset/x-epoch) for gap-free resume after a reconnect.
    resume: new WsbrokerResume(),
    members: new Map(), // session id -> { nick, clientId }
  };

  function parseList(value) {
    if (!value) return null;
    const items = value.split(',').map((s) => s.trim()).filter(Boolean);
    return items.length ? items : null;
  }

  function randomId() {
    const bytes = new Uint8Array(8);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  function roomDestination(room) {
    return `/topic/chat/room/${room}`;
  }

  function parseRoom(value) {
    const n = Number(value);
    return Number.isInteger(n) && n >= 1 && n <= MAX_ROOM ? n : null;
  }

  function selectedVia() {
    return ui.connectForm.elements.via.value === 'sockjs' ? 'sockjs' : 'websocket';
  }

  // ---- rendering (text only: user input never reaches innerHTML) ----

  function timeLabel(date) {
    return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function addLine(kind, text, { nick = null, mine = false, time = new Date() } = {}) {
    const stick = ui.messages.scrollTop + ui.messages.clientHeight >= ui.messages.scrollHeight - 8;
    const li = document.createElement('li');
    li.className = `line ${kind}${mine ? ' mine' : ''}`;
    li.setAttribute('data-testid', kind === 'chat' ? 'chat-message' : 'system-message');
    const stamp = document.createElement('time');
    stamp.dateTime = time.toISOString();
    stamp.textContent = timeLabel(time);
    li.append(stamp);
    if (nick !== null) {
      li.dataset.nick = nick;
      const who = document.createElement('span');
      who.className = 'nick';
      who.textContent = nick;
      li.append(who);
    }
    const body = document.createElement('span');
    body.className = 'text';
    body.textContent = text;
    li.append(body);
    ui.messages.append(li);
    while (ui.messages.childElementCount > MAX_LINES) ui.messages.firstElementChild.remove();
    if (stick) ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  const systemLine = (text) => addLine('system', text);

  function setStatus(stateName, text, transport = '') {
    ui.status.dataset.state = stateName;
    ui.status.dataset.transport = transport;
    ui.status.textContent = text;
  }

  function renderRooms() {
    for (const button of ui.roomList.querySelectorAll('button')) {
      const current = Number(button.dataset.room) === state.room;
      if (current) button.setAttribute('aria-current', 'true');
      else button.removeAttribute('aria-current');
    }
  }

  function renderRoomTitle(joined) {
    ui.roomTitle.dataset.room = state.room === null ? '' : String(state.room);
    ui.roomTitle.dataset.joined = String(joined);
    if (state.room === null) ui.roomTitle.textContent = 'No room joined';
    else ui.roomTitle.textContent = joined ? `Room ${state.room}` : `Room ${state.room} (joining…)`;
    const canSend = joined && Boolean(state.client && state.client.connected);
    ui.message.disabled = !canSend;
    ui.send.disabled = !canSend;
  }

  function renderConnectionControls(connecting) {
    ui.connect.disabled = connecting;
    ui.disconnect.disabled = !connecting;
    ui.nickname.disabled = connecting;
    for (const radio of ui.connectForm.elements.via) radio.disabled = connecting;
  }

  // ---- STOMP ----

  function openSocket(client) {
    if (selectedVia() === 'sockjs') {
      const options = config.sockjsTransports ? { transports: config.sockjsTransports } : {};
      return new SockJS(config.sockjsUrl, null, options);
    }
    // Offer the STOMP subprotocols (v12.stomp, v11.stomp, v10.stomp) like stompjs does itself.
    return new WebSocket(config.wsUrl, client.stompVersions.protocolVersions());
  }

  function describeSocket(socket) {
    if (typeof SockJS !== 'undefined' && socket instanceof SockJS) {
      return { label: `SockJS (${socket.transport})`, transport: socket.transport || 'sockjs' };
    }
    const sub = socket.protocol ? ` (${socket.protocol})` : '';
    return { label: `WebSocket${sub}`, transport: 'websocket' };
  }

  function connect(nick) {
    const client = new StompJs.Client({
      reconnectDelay: RECONNECT_DELAY_MS,
      heartbeatIncoming: HEARTBEAT_MS,
      heartbeatOutgoing: HEARTBEAT_MS,
      debug: config.debug ? (line) => console.debug(line) : () => {},
    });
    client.webSocketFactory = () => {
      state.socket = openSocket(client);
      return state.socket;
    };
    client.onConnect = () => {
      if (state.client !== client) return;
      const { label, transport } = describeSocket(state.socket);
      setStatus('connected', `Connected as ${nick} via ${label}`, transport);
      if (state.room !== null) subscribeRoom(state.room);
    };
    client.onWebSocketClose = (event) => {
      if (state.client !== client) return;
      state.subscription = null;
      renderRoomTitle(false);
      setMembers([]);
      const why = event && event.code ? ` (close code ${event.code})` : '';
      setStatus('reconnecting', `Connection lost${why}; retrying every ${RECONNECT_DELAY_MS / 1000} s`);
    };
    client.onStompError = (frame) => {
      if (state.client !== client) return;
      const message = frame.headers.message || 'unknown';
      const detail = frame.body && frame.body.trim() !== message ? ` — ${frame.body.trim()}` : '';
      systemLine(`Broker error: ${message}${detail}`);
    };
    state.client = client;
    state.nick = nick;
    renderConnectionControls(true);
    setStatus('connecting', `Connecting via ${selectedVia() === 'sockjs' ? 'SockJS' : 'WebSocket'}…`);
    client.activate();
  }

  async function disconnect() {
    const client = state.client;
    if (!client) return;
    leaveCurrentRoom();
    state.client = null;
    state.joined.clear();
    renderConnectionControls(false);
    renderRoomTitle(false);
    setStatus('disconnected', 'Disconnected');
    await client.deactivate();
  }

  function subscribeRoom(room) {
    const client = state.client;
    state.joinSeq += 1;
    const receipt = `join-${clientId}-${state.joinSeq}`;
    renderRoomTitle(false);
    // The room counts as joined once the broker confirmed the SUBSCRIBE with its RECEIPT, so
    // nothing sent to the room after that point can be missed.
    const onReceipt = () => {
      if (state.client !== client || state.room !== room) return;
      renderRoomTitle(true);
      if (state.joined.has(room)) {
        systemLine(`Rejoined room ${room} after reconnecting`);
      } else {
        systemLine(`You joined room ${room} as ${state.nick}`);
        state.joined.add(room);
      }
    };
    state.subscription = state.resume.subscribe(client, roomDestination(room), (frame) => onRoomMessage(room, frame), {
      headers: {
        receipt,
        'x-presence': 'true',
        'x-presence-info': JSON.stringify({ nick: state.nick, clientId }),
      },
      firstTime: { 'x-last': String(BACKLOG) },
      onReceipt,
      onResume: (recovered) => {
        if (state.room !== room) return;
        systemLine(recovered
          ? `Caught up with room ${room}: nothing was missed`
          : `Room ${room}: some messages sent while you were away are no longer available`);
      },
    });
  }

  // Unsubscribes from the current room (the broker tells the others that this tab left).
  function leaveCurrentRoom() {
    const client = state.client;
    if (client && client.connected && state.subscription) state.subscription.unsubscribe();
    state.subscription = null;
    if (state.room !== null) state.resume.forget(roomDestination(state.room));
    setMembers([]);
  }

  function joinRoom(room) {
    if (room === state.room && state.subscription) return;
    leaveCurrentRoom();
    state.room = room;
    ui.messages.replaceChildren();
    renderRooms();
    const client = state.client;
    if (client && client.connected) subscribeRoom(room);
    else {
      renderRoomTitle(false);
      systemLine(client ? `Room ${room}: joining once connected` : `Room ${room} selected: connect to join it`);
    }
  }

  function publish(room, payload) {
    state.client.publish({
      destination: roomDestination(room),
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...payload, nick: state.nick, clientId }),
    });
  }

  // ---- presence: the members list and the join/leave lines ----

  function memberOf(info) {
    try {
      const parsed = JSON.parse(info || '');
      if (parsed && typeof parsed.nick === 'string') {
        return { nick: parsed.nick.slice(0, MAX_NICK), clientId: String(parsed.clientId || '') };
      }
    } catch {
      // not this demo's info
    }
    return { nick: '(unknown)', clientId: '' };
  }

  function setMembers(entries) {
    state.members = new Map(entries);
    renderMembers();
  }

  function renderMembers() {
    const items = [...state.members.values()].map((m) => {
      const li = document.createElement('li');
      li.textContent = m.nick;
      li.dataset.nick = m.nick;
      li.setAttribute('data-testid', 'member');
      if (m.clientId === clientId) li.className = 'me';
      return li;
    });
    ui.members.replaceChildren(...items);
    ui.memberCount.textContent = String(state.members.size);
  }

  function onPresence(frame) {
    const kind = frame.headers['x-presence'];
    if (kind === 'snapshot') {
      let list = [];
      try {
        list = JSON.parse(frame.body);
      } catch {
        list = [];
      }
      setMembers(Array.isArray(list) ? list.map((m) => [String(m.session), memberOf(m.info)]) : []);
      return;
    }
    const session = frame.headers['x-presence-session'];
    if (kind === 'join') {
      const member = memberOf(frame.body);
      state.members.set(session, member);
      if (member.clientId !== clientId) systemLine(`${member.nick} joined the room`);
    } else if (kind === 'leave') {
      const member = state.members.get(session);
      state.members.delete(session);
      if (member && member.clientId !== clientId) systemLine(`${member.nick} left the room`);
    }
    renderMembers();
  }

  function onRoomMessage(room, frame) {
    if (room !== state.room) return; // a late delivery for a room the user already left
    if (frame.headers['x-presence']) {
      onPresence(frame);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(frame.body);
    } catch {
      msg = null;
    }
    if (!msg || typeof msg !== 'object' || typeof msg.nick !== 'string') {
      // Not from this demo (e.g. a message published with another client): show it as text.
      addLine('chat', String(frame.body).slice(0, MAX_TEXT), { nick: '(unknown)' });
      return;
    }
    const nick = msg.nick.slice(0, MAX_NICK);
    const mine = msg.clientId === clientId;
    if (typeof msg.text === 'string') {
      addLine('chat', msg.text.slice(0, MAX_TEXT), { nick, mine });
    }
  }

  // ---- wiring ----

  function buildRoomList() {
    for (let n = 1; n <= ROOM_SHORTCUTS; n += 1) {
      const li = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.dataset.room = String(n);
      button.setAttribute('data-testid', `room-${n}`);
      button.textContent = `Room ${n}`;
      button.addEventListener('click', () => joinRoom(n));
      li.append(button);
      ui.roomList.append(li);
    }
  }

  function loadNickname() {
    try {
      return localStorage.getItem(NICK_STORAGE_KEY) || '';
    } catch {
      return ''; // storage disabled
    }
  }

  function saveNickname(nick) {
    try {
      localStorage.setItem(NICK_STORAGE_KEY, nick);
    } catch {
      // storage disabled: the nickname is simply not remembered
    }
  }

  function init() {
    buildRoomList();
    ui.nickname.value = (params.get('nick') || loadNickname()).slice(0, MAX_NICK);
    if (params.get('via') === 'sockjs' || config.sockjsTransports) ui.connectForm.elements.via.value = 'sockjs';
    const initialRoom = parseRoom(params.get('room'));
    if (initialRoom !== null) {
      state.room = initialRoom;
      renderRooms();
      renderRoomTitle(false);
    }

    if (typeof StompJs === 'undefined' || typeof SockJS === 'undefined' || typeof WsbrokerResume === 'undefined') {
      setStatus('error', 'Missing vendor/*.js: run `npm ci && npm run build` in examples/web/chat');
      ui.connect.disabled = true;
      return;
    }
    if (!location.host && !params.get('broker')) {
      setStatus('error', 'Open this page through wsbroker --static (not as a file)');
      ui.connect.disabled = true;
      return;
    }

    ui.connectForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const nick = ui.nickname.value.trim().slice(0, MAX_NICK);
      if (!nick) {
        ui.nickname.focus();
        return;
      }
      saveNickname(nick);
      connect(nick);
    });
    ui.disconnect.addEventListener('click', () => {
      disconnect();
    });
    ui.roomForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const room = parseRoom(ui.roomNumber.value);
      if (room === null) return;
      ui.roomNumber.value = '';
      joinRoom(room);
    });
    ui.sendForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const text = ui.message.value.trim();
      if (!text || !state.client || !state.client.connected || state.room === null) return;
      publish(state.room, { type: 'chat', text: text.slice(0, MAX_TEXT) });
      ui.message.value = '';
      ui.message.focus();
    });
    window.addEventListener('pagehide', () => leaveCurrentRoom());
  }

  init();
})();
