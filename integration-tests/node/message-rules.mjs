// Node's ws as an independent client of wsguard's message rules (NodeMessageRulesIT).
// Usage: node message-rules.mjs URL CA_FILE. Prints one JSON object with what each connection saw:
// the echo of a chat message carrying markup, and the close code after a message the route refuses.
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';

const [url, ca] = process.argv.slice(2);
const options = { ca: readFileSync(ca) };
setTimeout(() => {
  console.log(JSON.stringify({ error: 'timeout' }));
  process.exit(1);
}, 20000).unref();

// Opens a connection, sends what `send` sends, and resolves with the first reply or the close.
const exchange = (send) => new Promise((resolve, reject) => {
  const ws = new WebSocket(url, options);
  const seen = { replies: [] };
  ws.on('error', reject);
  ws.on('message', (data, isBinary) => {
    seen.replies.push(isBinary ? { binary: data.length } : data.toString('utf8'));
    ws.close(1000, 'done');
  });
  ws.on('close', (code) => {
    seen.closeCode = code;
    resolve(seen);
  });
  ws.on('open', () => send(ws));
});

const result = {};
try {
  result.markup = await exchange((ws) =>
    ws.send(JSON.stringify({ type: 'chat', text: 'hi <img src=x onerror=alert(1)><b>there</b>' })));
  result.schema = await exchange((ws) => ws.send(JSON.stringify({ type: 'chat', text: 42 })));
  result.notJson = await exchange((ws) => ws.send('hello, not json'));
  // ws does not validate what it sends: raw bytes in a text frame, an overlong '/' (C0 AF).
  result.invalidUtf8 = await exchange((ws) => ws.send(Buffer.from([0x7b, 0xc0, 0xaf, 0x7d]), { binary: false }));
  result.binary = await exchange((ws) => ws.send(Buffer.from([1, 2, 3])));
  console.log(JSON.stringify(result));
  process.exit(0);
} catch (error) {
  console.log(JSON.stringify({ ...result, error: String(error) }));
  process.exit(1);
}
