import 'reflect-metadata';
import { runApp } from '@app/runtime';
import { emailServiceApp } from './app';

runApp(emailServiceApp);
