// The cursor-based incremental export through node-zendesk's ticketexport.exportCursor,
// used as its documentation shows: the first page with no cursor, exportCursor(start)
// (its query builder then sends `cursor=undefined` beside the start_time), then each
// after_cursor until end_of_stream, then once more from the last cursor.
'use strict';
const {client, run} = require('./zendesk_client');

run(async () => {
  const zd = client();
  const pages = [];
  let page = (await zd.ticketexport.exportCursor(0)).result;
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
  return {pages, caughtUp: caughtUp.tickets.map((t) => t.id)};
});
