// A Node `ws` client for the interoperability tests: connects to the URL given with
// permessage-deflate offered (the library's default for clients), sends a long, repetitive
// message to the probe's `echo` command (over ws's 1 KiB threshold, so it goes out compressed)
// and prints what it saw as JSON.
const WebSocket = require("ws");

const TEXT = "the same words, again and again; ".repeat(300);
const ws = new WebSocket(process.argv[2], { perMessageDeflate: true });
const seen = {};
ws.on("upgrade", (response) => {
  seen.extensions = response.headers["sec-websocket-extensions"];
});
ws.on("open", () => {
  seen.agreed = ws.extensions;
  ws.send("echo " + TEXT);
});
ws.on("message", (data) => {
  seen.echoed = data.toString() === TEXT;
  ws.close(1000, "done");
});
ws.on("close", (code) => {
  seen.close = code;
  console.log(JSON.stringify(seen));
});
ws.on("error", (error) => {
  console.error(String(error));
  process.exit(1);
});
