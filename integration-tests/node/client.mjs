// A second, independent WebSocket client (Node's ws) for NodeClientIT.
// Usage: node client.mjs URL [CA_FILE]. With CA_FILE the server certificate is verified against it,
// otherwise (wss) it is not checked. Prints one JSON object with what it observed, exit 0;
// exit 1 with {"error": ...} when something fails.
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';

const [url, ca] = process.argv.slice(2);
const options = ca ? { ca: readFileSync(ca) } : { rejectUnauthorized: false };
const result = {};
const fail = (error) => {
  console.log(JSON.stringify({ ...result, error: String(error) }));
  process.exit(1);
};
setTimeout(() => fail('timeout'), 20000).unref();

const ws = new WebSocket(url, ['node.v1', 'chat.v2'], options);
const text = 'héllo from node ✓ ' + 'x'.repeat(70000);
const binary = randomBytes(300000);
const replies = [];
let waiting = null;
const next = () => new Promise((resolve) => {
  if (replies.length) resolve(replies.shift()); else waiting = resolve;
});

ws.on('message', (data, isBinary) => {
  const reply = { data, isBinary };
  if (waiting) { const w = waiting; waiting = null; w(reply); } else replies.push(reply);
});
ws.on('error', fail);
ws.on('close', (code, reason) => {
  result.closeCode = code;
  result.closeReason = reason.toString();
  console.log(JSON.stringify(result));
  process.exit(0);
});
ws.on('open', async () => {
  result.protocol = ws.protocol;
  ws.send(text);
  const t = await next();
  result.textEcho = !t.isBinary && t.data.toString('utf8') === text;
  ws.send(binary);
  const b = await next();
  result.binaryEcho = b.isBinary && Buffer.compare(b.data, binary) === 0;
  ws.ping(Buffer.from('node-ping'));
  ws.once('pong', (data) => {
    result.pong = data.toString();
    ws.send('close:4040:bye from upstream');
  });
});
