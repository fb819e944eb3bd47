import 'reflect-metadata';
import { runApp } from '@app/runtime';
import { notifierApp } from './app';

runApp(notifierApp);
