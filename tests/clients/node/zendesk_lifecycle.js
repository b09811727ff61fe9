// The deletion lifecycle through node-zendesk's own methods: import, list, show and
// show_many, bulk soft delete with job polling, the deleted-tickets list, restore and
// restore_many, permanent deletion one by one and in bulk.
// node-zendesk 6.0.1 has no methods for deleted_tickets: those calls go through its
// generic Client.request/requestAll/put, as its users would write them.
'use strict';
const {client, advance, run} = require('./zendesk_client');

const ids = (tickets) => tickets.map((t) => t.id);

async function deletedIds(zd) {
  const pages = await zd.tickets.requestAll('GET', ['deleted_tickets']);
  return pages.flatMap((page) => ids(page.deleted_tickets));
}

async function finished(zd, job) {
  await advance(60);
  return zd.jobstatuses.watch(job.id, 20, 3);
}

run(async () => {
  const zd = client();
  const imported = [];
  for (const n of [1, 2, 3, 4, 5, 6]) {
    const {result} = await zd.ticketimport.import({
      ticket: {subject: `Imported ${n}`, comment: {body: 'from SuperOffice'}, external_id: `so-${n}`},
    });
    imported.push(result.ticket);
  }
  const listed = await zd.tickets.list();
  const shown = (await zd.tickets.show(imported[0].id)).result;
  const many = (await zd.tickets.showMany(ids(imported).slice(0, 3))).result;
  const byExternal = await zd.tickets.listWithFilter('external_id', 'so-2');

  const [a, b, c, d, e, f] = ids(imported);
  const softJob = (await zd.tickets.deleteMany([a, b, c, d, e])).result.job_status;
  const softDone = await finished(zd, softJob);
  const jobsShown = (await zd.jobstatuses.showMany([softJob.id])).result.job_statuses;
  await zd.tickets.delete(f);
  const deleted = await deletedIds(zd);

  const restored = (await zd.tickets.put(['deleted_tickets', a, 'restore'])).result;
  const restoredMany = (await zd.tickets.put(['deleted_tickets', 'restore_many', {ids: `${b},${c}`}]))
    .result;
  const purgeOne = (await zd.tickets.request('DELETE', ['deleted_tickets', d])).result.job_status;
  const purgeMany = (await zd.tickets.request('DELETE', ['deleted_tickets', 'destroy_many', {ids: `${e},${f}`}]))
    .result.job_status;
  const purgeOneDone = await finished(zd, purgeOne);
  const purgeManyDone = await zd.jobstatuses.watch(purgeMany.id, 20, 3);
  let missing;
  try {
    await zd.tickets.show(d);
  } catch (error) {
    missing = {statusCode: error.statusCode, result: error.result};
  }
  return {
    imported: imported.map((t) => ({id: t.id, external_id: t.external_id, subject: t.subject})),
    listed: ids(listed),
    shown: {id: shown.id, external_id: shown.external_id, status: shown.status},
    many: ids(many),
    byExternal: ids(byExternal),
    softJob: {status: softJob.status, job_type: softJob.job_type},
    softDone: {status: softDone.status, results: softDone.results},
    jobsShown: jobsShown.map((j) => ({id: j.id, status: j.status})),
    deleted,
    restored,
    restoredMany,
    purgeOne: {status: purgeOne.status, total: purgeOne.total},
    purgeOneDone: {status: purgeOneDone.status, results: purgeOneDone.results},
    purgeManyDone: {status: purgeManyDone.status, results: purgeManyDone.results},
    deletedAfter: await deletedIds(zd),
    missing,
    live: ids(await zd.tickets.list()),
  };
});
