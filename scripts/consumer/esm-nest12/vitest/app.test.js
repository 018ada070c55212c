// vitest: its own functions, the shared suite.
import { beforeAll, afterAll, test, expect } from 'vitest';
import { defineSuite } from '../scenario.js';

defineSuite({ beforeAll, afterAll, test, expect }, 'vitest');
