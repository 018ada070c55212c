// jobs.service.test.js
const { Test } = require('@nestjs/testing');
const { RedisTestingModule } = require('@app/redis/testing');
const { JobsService } = require('./jobs.service');

let moduleRef;
beforeAll(async () => {
  moduleRef = await Test.createTestingModule({
    imports: [RedisTestingModule.forRoot()],
    providers: [JobsService],
  }).compile();
  await moduleRef.init();
});
afterAll(() => moduleRef.close()); // deletes this file's keys, disconnects

test('runs twice, then throttles', async () => {
  const jobs = moduleRef.get(JobsService);
  expect(await jobs.run(7)).toBe('run 1');
  expect(await jobs.run(7)).toBe('run 2');
  expect(await jobs.run(7)).toBe('throttled');
});
