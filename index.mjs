// `import ... from '@app/redis'`: the same binding as `require('@app/redis')` (index.js), with
// named exports, and the whole module as the default export.
import binding from './index.js';

export const { RedisService, Pipeline, ScanIterator, Subscription, EventBus, isRedisConfigured, registerPromClient } = binding;
export default binding;
