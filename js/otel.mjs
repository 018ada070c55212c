// `import { RedisInstrumentation } from '@app/redis/otel'`: the same as otel.js.
import otel from './otel.js';

export const { RedisInstrumentation } = otel;
export default otel;
