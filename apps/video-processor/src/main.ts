import 'reflect-metadata';
import { runApp } from '@app/runtime';
import { videoProcessorApp } from './app';

runApp(videoProcessorApp);
