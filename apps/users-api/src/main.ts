import 'reflect-metadata';
import { runApp } from '@app/runtime';
import { usersApiApp } from './app';

runApp(usersApiApp);
