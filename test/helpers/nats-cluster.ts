/**
 * A real 3-node nats-server cluster with JetStream, for coordination tests: the APP account has JetStream
 * (coordination connects there), SYS is the system account (discovery, PROFILEZ; no JetStream).
 */
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { APP_PASSWORD, APP_USER, startCluster, type NatsServer } from './nats-server.js';

/**
 * Starts `names` as one JetStream cluster and resolves once the APP account can create a KV bucket with
 * one replica per node. On a loaded machine a fresh cluster has once in a while answered "no suitable peers
 * for placement" for a whole minute (the meta leader elected, the routes up): such a cluster is stopped
 * and one fresh cluster (new ports, new stores) is started in its place, said on stderr. Nothing of the
 * daemon has run yet at that point, so this retries the test's setup, not the code under test.
 */
export async function startJetStreamCluster(names = ['js1', 'js2', 'js3'], clusterName = 'coord'): Promise<NatsServer[]> {
  for (let attempt = 1; ; attempt++) {
    const cluster = await startCluster(names, { clusterName, jetstream: true, profPort: false });
    try {
      await jetStreamReady(cluster, attempt === 1 ? 30_000 : 60_000);
      return cluster;
    } catch (err) {
      // Stop the servers here: the caller never gets them to stop (they kept a test file's process alive
      // until its timeout).
      await Promise.all(cluster.map((s) => s.stop('SIGKILL')));
      if (attempt >= 2) throw err;
      process.stderr.write(`# JetStream cluster ${clusterName} not ready (${String(err).split('\n')[0]}); starting a fresh one\n`);
    }
  }
}

async function jetStreamReady(cluster: NatsServer[], withinMs: number): Promise<void> {
  // The JetStream meta leader is elected some time after the routes are up, and each server learns of it on
  // its own: until then, API calls through that server fail ("jetstream is not enabled"). Wait for every one.
  const deadline = Date.now() + withinMs;
  for (const [i, s] of cluster.entries()) {
    const nc = await connect({ servers: s.natsUrl, user: APP_USER, pass: APP_PASSWORD });
    try {
      for (;;) {
        try {
          const kv = await new Kvm(nc).create(`cluster_ready_probe_${i}`, { replicas: cluster.length });
          await kv.put('k', 'v');
          await kv.destroy();
          break;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`JetStream did not become ready on ${s.name} within ${withinMs / 1000} s: ${String(err)}\n${s.output.slice(-3000)}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    } finally {
      await nc.close();
    }
  }
}
