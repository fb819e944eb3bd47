import 'reflect-metadata';
import { runApp } from '@app/runtime';
import { consoleApp } from './app';

runApp(consoleApp);
