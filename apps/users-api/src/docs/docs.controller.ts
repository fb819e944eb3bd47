import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { Controller, Get, Header, Param, Res } from '@nestjs/common';
import type { Response } from 'express';
import { NotFoundError } from '../common/app-error';
import { buildOpenApi } from './openapi';

/** The Swagger UI files served from the package itself: nothing is fetched from elsewhere. */
const ASSETS = new Set([
  'swagger-ui.css',
  'swagger-ui-bundle.js',
  'swagger-ui-standalone-preset.js',
  'favicon-32x32.png',
]);

const INIT = `window.ui = SwaggerUIBundle({ url: '/docs/openapi.json', dom_id: '#ui' });`;

/**
 * The page's own policy (the API's default allows nothing): scripts from here and the one inline start-up script by
 * its hash, styles from here (Swagger UI also sets inline styles), images from here and data: URLs, requests to here.
 */
const PAGE_POLICY = [
  "default-src 'none'",
  `script-src 'self' 'sha256-${createHash('sha256').update(INIT).digest('base64')}'`,
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>users-api — API documents</title>
    <link rel="stylesheet" href="/docs/assets/swagger-ui.css" />
    <link rel="icon" href="/docs/assets/favicon-32x32.png" />
  </head>
  <body>
    <div id="ui"></div>
    <script src="/docs/assets/swagger-ui-bundle.js"></script>
    <script>${INIT}</script>
  </body>
</html>`;

/** `/docs`: the OpenAPI 3.1 document of this API and a browser UI for it. */
@Controller('docs')
export class DocsController {
  private readonly document = buildOpenApi();
  private readonly assets = dirname(require.resolve('swagger-ui-dist/package.json'));

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  @Header('Content-Security-Policy', PAGE_POLICY)
  page(): string {
    return PAGE;
  }

  @Get('openapi.json')
  openapi(): Record<string, unknown> {
    return this.document;
  }

  @Get('assets/:file')
  asset(@Param('file') file: string, @Res() response: Response): void {
    if (!ASSETS.has(file)) throw new NotFoundError('DOCS.NOT_FOUND', `No asset ${file}`);
    response.sendFile(file, { root: this.assets, maxAge: '1h' });
  }
}
