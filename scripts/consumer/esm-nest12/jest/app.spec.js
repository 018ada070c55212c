// jest in ESM mode (node --experimental-vm-modules): jest's globals, the shared suite.
import { defineSuite } from '../scenario.js';

defineSuite({ beforeAll, afterAll, test, expect }, 'jest');
