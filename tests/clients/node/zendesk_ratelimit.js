// The incremental export's per-minute limit as node-zendesk sees it: a 429 that carries
// Retry-After is handed back as an Error result (checkRequestResponse), not thrown.
'use strict';
const {client, run} = require('./zendesk_client');

run(async () => {
  const zd = client();
  let ok = 0;
  for (let i = 0; i < 20; i++) {
    const {response, result} = await zd.ticketexport.export(0);
    if (!(result instanceof Error)) {
      ok += 1;
      continue;
    }
    return {
      ok,
      limited: {
        status: response.status,
        statusCode: result.statusCode,
        message: result.message,
        retryAfter: response.headers.get('retry-after'),
        body: result.result,
      },
    };
  }
  return {ok, limited: null};
});
