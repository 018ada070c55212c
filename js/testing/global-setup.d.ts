/** jest `globalSetup` / vitest `globalSetup`: starts a throwaway redis-server unless REDIS_URL is set. */
declare function globalSetup(): Promise<() => Promise<void>>
export = globalSetup
