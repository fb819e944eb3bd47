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
    <script>window.ui = SwaggerUIBundle({ url: '/docs/openapi.json', dom_id: '#ui' });</script>
  </body>
</html>`;

/** `/docs`: the OpenAPI 3.1 document of this API and a browser UI for it. */
@Controller('docs')
export class DocsController {
  private readonly document = buildOpenApi();
  private readonly assets = dirname(require.resolve('swagger-ui-dist/package.json'));

  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
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
