// The cursor-based incremental export through node-zendesk's ticketexport.exportCursor:
// the first page from start_time, then each after_cursor until end_of_stream, then once
// more from the last cursor. exportCursor(start) with no cursor puts `cursor=undefined`
// in the query (its query builder encodes the missing value); that call is reported, and
// the walk starts with an empty cursor, which node-zendesk sends as `cursor=`.
'use strict';
const {client, run} = require('./zendesk_client');

run(async () => {
  const zd = client();
  let withoutCursor;
  try {
    withoutCursor = {ok: (await zd.ticketexport.exportCursor(0)).result};
  } catch (error) {
    withoutCursor = {statusCode: error.statusCode, result: error.result};
  }
  const pages = [];
  let page = (await zd.ticketexport.exportCursor(0, '')).result;
  for (;;) {
    pages.push({
      ids: page.tickets.map((t) => t.id),
      statuses: page.tickets.map((t) => t.status),
      before_cursor: page.before_cursor,
      end_of_stream: page.end_of_stream,
    });
    if (page.end_of_stream) break;
    page = (await zd.ticketexport.exportCursor(0, page.after_cursor)).result;
  }
  const caughtUp = (await zd.ticketexport.exportCursor(0, page.after_cursor)).result;
  return {withoutCursor, pages, caughtUp: caughtUp.tickets.map((t) => t.id)};
});
