// The NestJS 12 app under plain Node (ES modules): an application context with RedisModule.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { RedisModule, RedisService } from '@app/redis/nestjs';

class AppModule {}
Module({ imports: [RedisModule.forRoot({ url: process.env.REDIS_URL, keyPrefix: `consumer-main:${process.pid}:` })] })(AppModule);

const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
const redis = app.get(RedisService);
await redis.set('k', 'v', { EX: 60 });
const value = await redis.get('k');
await app.close();
if (value !== 'v') throw new Error(`expected v, got ${value}`);
console.log('NestJS 12 under Node: ok');
