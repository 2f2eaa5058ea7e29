// undici's index loads all of undici (fetch, WebSocket, caches, mocks): about 85 ms at start-up, on the path to the
// first copy. The lean client needs only the Agent and request(), which load in about 30 ms. These paths are not
// undici's public API, so its version is pinned in package.json; test/unit/undiciAgent.test.ts checks they still load.
import type { Dispatcher } from "undici";
import requestApi from "undici/lib/api/api-request.js";
import Agent from "undici/lib/dispatcher/agent.js";

export { Agent as UndiciAgent };

/** undici's `dispatcher.request()`, which its index adds to every Dispatcher. */
export function undiciRequest(
  dispatcher: Dispatcher,
  options: Dispatcher.RequestOptions,
): Promise<Dispatcher.ResponseData> {
  return requestApi.call(dispatcher, options);
}
