// Reads `serve` with the `eventsource` package (the EventSource most Node.js programs use) until
// it has every expected event, resuming by Last-Event-ID each time the server drops the stream.
// Usage: node eventsource-client.mjs URL EXPECTED.ndjson
// Checks: the events (resends of a boundary event dropped by meta.id, as a client must when ids
// carry timestamps) equal EXPECTED in order, and the client reconnected at least twice.
import { readFileSync } from "node:fs";
import { EventSource } from "eventsource";

const [url, expectedPath] = process.argv.slice(2);
const expected = readFileSync(expectedPath, "utf8").split("\n").filter((l) => l.length > 0);
const received = [];
const seen = new Set();
let opens = 0;
let resent = 0;

const timer = setTimeout(() => finish(`timed out with ${received.length}/${expected.length} events`), 60000);
const source = new EventSource(url);
source.onopen = () => { opens += 1; };
source.onerror = () => {}; // a dropped stream: the package reconnects by itself
source.onmessage = (message) => {
  const id = JSON.parse(message.data).meta.id;
  if (seen.has(id)) { resent += 1; return; }
  seen.add(id);
  received.push(message.data);
  if (received.length === expected.length) finish(null);
};

function finish(failure) {
  clearTimeout(timer);
  source.close();
  const mismatch = received.findIndex((line, idx) => line !== expected[idx]);
  if (!failure && mismatch >= 0) failure = `event ${mismatch} differs`;
  if (!failure && opens < 3) failure = `only ${opens} connections: no resume was tested`;
  console.log(`eventsource: ${received.length} events over ${opens} connections, ${resent} resent boundary events dropped`);
  if (failure) { console.error(`eventsource: FAILED: ${failure}`); process.exit(1); }
  process.exit(0);
}
