/**
 * A real 3-node nats-server cluster with JetStream, for coordination tests: the APP account has JetStream
 * (coordination connects there), SYS is the system account (discovery, PROFILEZ; no JetStream).
 */
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { APP_PASSWORD, APP_USER, startCluster, type NatsServer } from './nats-server.js';

/** Starts `names` as one JetStream cluster and resolves once the APP account can create a KV bucket. */
export async function startJetStreamCluster(names = ['js1', 'js2', 'js3'], clusterName = 'coord'): Promise<NatsServer[]> {
  const cluster = await startCluster(names, { clusterName, jetstream: true, profPort: false });
  // The JetStream meta leader is elected some time after the routes are up, and each server learns of it on
  // its own: until then, API calls through that server fail ("jetstream is not enabled"). Wait for every one.
  const deadline = Date.now() + 30_000;
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
          if (Date.now() > deadline) throw new Error(`JetStream did not become ready on ${s.name}: ${String(err)}`);
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    } finally {
      await nc.close();
    }
  }
  return cluster;
}
