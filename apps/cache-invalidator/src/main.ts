import 'reflect-metadata';
import { runApp } from '@app/runtime';
import { cacheInvalidatorApp } from './app';

runApp(cacheInvalidatorApp);
