// Plain Node with require().
const { RedisService } = require('@app/redis');

(async () => {
  const redis = await RedisService.connect({ url: process.env.REDIS_URL });
  await redis.set('plain:cjs', 'ok', { EX: 60 });
  const value = await redis.get('plain:cjs');
  await redis.disconnect();
  if (value !== 'ok') throw new Error(`expected ok, got ${value}`);
  if (Object.keys(require('@app/redis')).some((k) => k.startsWith('__'))) throw new Error('an internal name is exported');
  console.log('require: ok');
})().catch((e) => { console.error(e); process.exit(1); });
