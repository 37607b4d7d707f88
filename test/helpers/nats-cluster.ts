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
  // The JetStream meta leader is elected some time after the routes are up: until then, API calls fail.
  const nc = await connect({ servers: cluster.map((s) => s.natsUrl), user: APP_USER, pass: APP_PASSWORD });
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const kv = await new Kvm(nc).create('cluster_ready_probe', { replicas: cluster.length });
        await kv.destroy();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`JetStream did not become ready in the cluster: ${String(err)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await nc.close();
  }
  return cluster;
}
