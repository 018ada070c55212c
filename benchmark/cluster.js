'use strict';
// Cluster clients and scenarios for `npm run bench`: @app/redis in cluster mode against ioredis's
// `Cluster` and node-redis's `createCluster`, on a local 3-master cluster (with replicas) that
// run.js starts. Keys are spread over the masters; every peer gets the same keys.
const IORedis = require('ioredis');
const { createCluster } = require('redis');
const { RedisService } = require('..');

const KEYS = Array.from({ length: 64 }, (_, i) => `bench:c:${i}`);
const v100 = 'x'.repeat(100);

function clusterClients(cluster) {
  const nodes = cluster.options.cluster.nodes;
  const rootNodes = nodes.map((n) => ({ host: n.split(':')[0], port: Number(n.split(':')[1]) }));
  return [
    {
      name: '@app/redis',
      async open() { this.c = await RedisService.connect({ ...cluster.options, logger: false }); },
      close() { return this.c.disconnect(); },
      ops() { const c = this.c; return { get: (k) => c.get(k), set: (k, v) => c.set(k, v) }; },
    },
    {
      name: 'ioredis Cluster',
      async open() {
        this.c = new IORedis.Cluster(rootNodes, { lazyConnect: true });
        await this.c.connect();
      },
      close() { this.c.disconnect(); },
      ops() { const c = this.c; return { get: (k) => c.get(k), set: (k, v) => c.set(k, v) }; },
    },
    {
      name: 'node-redis cluster',
      async open() {
        this.c = createCluster({ rootNodes: rootNodes.map((n) => ({ url: `redis://${n.host}:${n.port}` })) });
        await this.c.connect();
      },
      close() { return this.c.quit(); },
      ops() { const c = this.c; return { get: (k) => c.get(k), set: (k, v) => c.set(k, v) }; },
    },
  ];
}

let next = 0;
const key = () => KEYS[(next++) % KEYS.length];

const clusterScenarios = [
  { name: 'cluster GET 100 B, sequential, 64 keys', unit: async (o) => { await o.get(key()); return 1; } },
  { name: 'cluster SET 100 B, sequential, 64 keys', unit: async (o) => { await o.set(key(), v100); return 1; } },
  {
    name: 'cluster GET 100 B, 256 in flight, 64 keys',
    unit: async (o) => {
      const ps = new Array(256);
      for (let i = 0; i < 256; i++) ps[i] = o.get(key());
      await Promise.all(ps);
      return 256;
    },
  },
];

/** Writes the keys every scenario reads (through the first client). */
async function seedCluster(client) {
  for (const k of KEYS) await client.c.set(k, v100);
}

module.exports = { clusterClients, clusterScenarios, seedCluster };
