/**
 * HELLO's AUTH clause on a server that requires authentication: the
 * handshake node-redis, ioredis and redis-py use when given a password.
 */
import assert from "node:assert/strict";
import { LAYOUTS, withServer } from "./support.ts";
import { ACL, NO_REDIS_CLI, redisScript } from "./security_support.ts";

const opts = { ...LAYOUTS[1].options, respPort: 0, auth: { acl: ACL, failureDelayMs: 0 } };
const HELLO_NOAUTH =
  "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH " +
  "<user> <pass> option can be used to authenticate the client and select the RESP protocol " +
  "version at the same time";

Deno.test({
  name:
    "HELLO AUTH authenticates and switches protocol in one step; HELLO alone before it is refused",
  ignore: NO_REDIS_CLI,
  fn: () =>
    withServer(opts, async (server) => {
      const port = server.addr.respPort!;
      const out = await redisScript(port, [
        "HELLO 3",
        "GET app:1",
        "HELLO 3 AUTH admin wrong-pw",
        "ACL WHOAMI",
        "HELLO 3 AUTH gone gone-pw",
        "HELLO 3 AUTH reader reader-pw",
        "GET other:1",
        "SET app:1 v",
      ]);
      assert.equal(out[0], HELLO_NOAUTH);
      assert.equal(out[1], "NOAUTH Authentication required.");
      assert.equal(out[2], "WRONGPASS invalid username-password pair or user is disabled.");
      assert.equal(out[3], "NOAUTH Authentication required.");
      assert.equal(out[4], "WRONGPASS invalid username-password pair or user is disabled.");
      // The RESP3 map HELLO answers, one field a line; then the reader's own permissions hold.
      const rest = out.slice(5);
      assert.ok(rest.includes("proto 3"), rest.join("\n"));
      assert.equal(
        rest.at(-2),
        "NOPERM this user has no permissions to access one of the keys used as arguments",
      );
      assert.equal(rest.at(-1), "NOPERM this user has no permissions to run the 'set' command");
    }),
});
