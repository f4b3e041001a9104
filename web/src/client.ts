import { Client, cacheExchange, fetchExchange, subscriptionExchange } from "urql";
import { createClient as createWsClient } from "graphql-ws";

import { loadSession } from "./session";

/// The GraphQL client: HTTP for queries and mutations, graphql-ws for
/// subscriptions (job progress), both carrying the session's access token.
export function makeClient(): Client {
  const bearer = () => loadSession()?.accessToken;
  const ws = createWsClient({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
    connectionParams: () => {
      const token = bearer();
      return token ? { Authorization: `Bearer ${token}` } : {};
    },
    lazy: true,
  });
  return new Client({
    url: "/graphql",
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? "" }, sink) }),
        }),
      }),
    ],
    fetchOptions: () => {
      const token = bearer();
      return token ? { headers: { Authorization: `Bearer ${token}` } } : {};
    },
    requestPolicy: "cache-and-network",
  });
}
