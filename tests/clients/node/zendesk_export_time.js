// The time-based incremental export through node-zendesk: tickets.incremental (its getAll
// over incremental/tickets) and ticketexport.export (the raw envelope), from start_time 0
// and again from the end_time it answered.
'use strict';
const {client, run} = require('./zendesk_client');

run(async () => {
  const zd = client();
  const rows = await zd.tickets.incremental(0);
  const {result} = await zd.ticketexport.export(0);
  const again = (await zd.ticketexport.export(result.end_time)).result;
  return {
    incremental: rows.map((t) => ({id: t.id, status: t.status, subject: t.subject})),
    export: {
      keys: Object.keys(result),
      count: result.count,
      end_of_stream: result.end_of_stream,
      end_time: result.end_time,
    },
    again: again.tickets.map((t) => t.id),
  };
});
