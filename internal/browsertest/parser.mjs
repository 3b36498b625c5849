// Feeds the SSE streams of the test's golden vectors to the web UI's
// parser (static/js/sse.js, copied by the test to SSEHUB_PARSER) exactly as
// the fetch transport does: a TextDecoder per connection, fed one read at a
// time. Reads a JSON array of cases on stdin; writes a JSON array of
// results on stdout.
const { Parser } = await import(process.env.SSEHUB_PARSER);

let input = "";
for await (const chunk of process.stdin) input += chunk;
const cases = JSON.parse(input);

const results = cases.map((c) => {
  const items = [];
  let retry = null;
  const p = new Parser({
    lastEventId: c.lastEventId,
    onEvent: (e) => items.push({ kind: "event", type: e.type, id: e.lastEventId, data: e.data }),
    onComment: (text) => { if (c.comments) items.push({ kind: "comment", text }); },
    onRetry: (ms) => { retry = ms; },
  });
  c.conns.forEach((reads, i) => {
    if (i > 0) items.push({ kind: "reconnect" });
    p.reset();
    const dec = new TextDecoder("utf-8");
    for (const b64 of reads) p.feed(dec.decode(Buffer.from(b64, "base64"), { stream: true }));
    p.feed(dec.decode());
    items.push({ kind: "eof" }, { kind: "last-event-id", id: p.lastEventId });
  });
  return { name: c.name, items, retry };
});
process.stdout.write(JSON.stringify(results));
