import { suite } from './isolation.js';

suite('file 2');
