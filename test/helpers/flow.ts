/**
 * A Flow wired as the app wires it (inventory, rule engine, metrics reading both), with a silent log and a
 * fixed clock unless given: for unit tests of what the flow decides.
 */
import { pino } from 'pino';

import type { Clock } from '../../src/clock.js';
import type { Config } from '../../src/config/types.js';
import { Flow, type FlowOptions } from '../../src/flow.js';
import { Metrics } from '../../src/metrics/registry.js';
import { TriggerEngine } from '../../src/trigger/engine.js';
import { Inventory } from '../../src/watch/inventory.js';

export interface FlowRig {
  flow: Flow;
  inventory: Inventory;
  engine: TriggerEngine;
  metrics: Metrics;
}

/** `options` must give `submit`; anything else given replaces the default (a fresh inventory, 1,000,000 ms). */
export function flowRig(config: Config, options: Partial<FlowOptions> & Pick<FlowOptions, 'submit'>): FlowRig {
  const inventory = options.inventory ?? new Inventory();
  const engine = options.engine ?? new TriggerEngine(config.triggers);
  const metrics = options.metrics ?? new Metrics({ servers: () => inventory.values(), rules: () => engine.firing() });
  const clock: Clock = { now: () => 1_000_000, sleep: () => Promise.resolve() };
  const flow = new Flow({ log: pino({ level: 'silent' }), clock, config: () => config, ...options, inventory, engine, metrics });
  return { flow, inventory, engine, metrics };
}
