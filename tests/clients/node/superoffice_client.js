// SuperOffice's own TypeScript/JavaScript client, @superoffice/webapi (unmodified), driving
// a SuperOffice tenant: the simulator in the tests (tests/clients/test_superoffice_webapi.py).
//
// Environment:
//   SO_BASE_URL   the tenant URL, e.g. http://127.0.0.1:PORT/Cust12345 (the client adds api/v1/...)
//   SO_TICKET     the SOTicket credential;  SO_APP_TOKEN  the SO-AppToken (Online)
//   SO_CULTURE    optional language/culture code sent as SO-Language and SO-Culture
//   SO_CALLS      a JSON array of calls, run in order:
//     {"agent": "Ticket"|"Archive", "method": "getTicketEntityAsync", "args": [...]}
//         a method of the client's agent, called as written;
//     {"rest": "GET"|"POST"|"DELETE"|..., "path": "Ticket/5", "params": {...}, "body": ...,
//      "as": "TicketEntity"}
//         the client has no REST Ticket or Archive API: these requests go through the
//         Ticket agent's own axios instance (so with the client's headers: auth, SO-AppToken,
//         SO-TimeZone, culture), and "as" parses the answer with the client's converter
//         (Create_<as>_From), as its REST classes do for other entities.
// Prints one JSON line: {"results": [...]}, one result per call; a failed call gives
// {"error": {"status", "data", "message"}} instead of stopping the script. Dates the client
// built are written as {"$date": "<ISO>"} so the tests see that they are Date objects.
"use strict";

const { WebApi } = require("@superoffice/webapi");
const converters = require("@superoffice/webapi/Converters.js");

function plain(value) {
  if (value instanceof Date) {
    return { $date: Number.isNaN(value.getTime()) ? null : value.toISOString() };
  }
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === "object") {
    const out = {};
    for (const [key, inner] of Object.entries(value)) out[key] = plain(inner);
    return out;
  }
  return value === undefined ? null : value;
}

function failure(err) {
  const response = err && err.response;
  return {
    error: {
      status: response ? response.status : null,
      data: response ? response.data : null,
      message: String((err && err.message) || err),
    },
  };
}

async function main() {
  const culture = process.env.SO_CULTURE || undefined;
  const api = new WebApi({
    baseUrl: process.env.SO_BASE_URL,
    languageCode: culture,
    cultureCode: culture,
    timezone: "UTC",
    timezoneInclude: true,
  });
  api.authenticateWithTicket(process.env.SO_TICKET);
  api.applicationToken(process.env.SO_APP_TOKEN);
  const agents = { Ticket: api.getTicketAgent(), Archive: api.getArchiveAgent() };
  const restBase = process.env.SO_BASE_URL.replace(/\/?$/, "/") + "api/v1/";

  const results = [];
  for (const call of JSON.parse(process.env.SO_CALLS || "[]")) {
    try {
      if (call.agent) {
        const agent = agents[call.agent];
        results.push(plain(await agent[call.method](...(call.args || []))));
      } else {
        const response = await agents.Ticket._axios.request({
          method: call.rest,
          url: restBase + call.path,
          params: call.params,
          data: call.body,
          headers: { Accept: "application/json" },
        });
        const data = call.as ? converters[`Create_${call.as}_From`](response.data) : response.data;
        results.push(plain({ status: response.status, data }));
      }
    } catch (err) {
      results.push(failure(err));
    }
  }
  console.log(JSON.stringify({ results }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
