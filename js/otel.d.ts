/**
 * OpenTelemetry spans and metrics for @app/redis, from its `app-redis:command` diagnostics
 * channel: a CLIENT span per command (per pipeline or transaction: one), child of the caller's
 * active span, with `db.system.name`, `db.operation.name`, `db.namespace`, `server.address`,
 * `server.port` and on failure `error.type`; and the `db.client.operation.duration` histogram
 * (seconds). Needs `@opentelemetry/api`.
 */
export declare class RedisInstrumentation {
  /** Providers default to the globally registered ones; `enabled: false` waits for `enable()`. */
  constructor(options?: { tracerProvider?: unknown; meterProvider?: unknown; enabled?: boolean })
  /** Starts turning the channel's traces into spans and measurements. */
  enable(): void
  /** Stops (spans already started still end). */
  disable(): void
}
