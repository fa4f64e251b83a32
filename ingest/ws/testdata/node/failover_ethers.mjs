// ethers v6, unchanged, through the edge: prints "head N" for each block
// event (a newHeads subscription), and runs the commands the test writes
// on stdin: "hang" calls ethsim_hang and prints how it ended, "quit" ends.
import { WebSocketProvider } from "ethers";

const out = (s) => process.stdout.write(s + "\n");
const provider = new WebSocketProvider(process.argv[2]);
await provider.on("block", (n) => out("head " + n));
out("subscribed");

let buf = "";
process.stdin.on("data", (d) => {
  buf += d.toString();
  let i;
  while ((i = buf.indexOf("\n")) >= 0) {
    const cmd = buf.slice(0, i);
    buf = buf.slice(i + 1);
    if (cmd === "hang") {
      provider.send("ethsim_hang", []).then(
        () => out("hang answered"),
        (e) => out("hang error " + JSON.stringify(e.error ?? { message: e.message })),
      );
    } else if (cmd === "quit") {
      provider.destroy().then(() => process.exit(0));
    }
  }
});
