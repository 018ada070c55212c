/** jest `globalTeardown`: stops the redis-server the global setup started. */
declare function globalTeardown(): Promise<void>
export = globalTeardown
