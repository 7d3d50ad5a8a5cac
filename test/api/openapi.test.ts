/** The OpenAPI document (SPEC §9) is generated from the route schemas and describes every route. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiFixture, type ApiFixture } from './helpers.ts';

let f: ApiFixture;
let doc: any;
before(async () => {
  f = apiFixture();
  const answer = await f.call('GET', '/docs/openapi.json', { token: null });
  assert.equal(answer.status, 200);
  doc = answer.body;
});
after(() => f.close());

const ROUTES: Record<string, string[]> = {
  '/account': ['get'],
  '/account/plans': ['get'],
  '/account/tokens': ['get', 'post'],
  '/account/tokens/{tokenId}': ['delete'],
  '/devices': ['get', 'post'],
  '/devices/{deviceId}': ['get', 'put', 'delete'],
  '/devices/{deviceId}/params': ['get', 'put'],
  '/devices/{deviceId}/params/{paramId}': ['delete'],
  '/devices/{deviceId}/tokens': ['get', 'post'],
  '/devices/{deviceId}/tokens/{tokenId}': ['delete'],
};

test('is OpenAPI 3 with every admin route, each with a summary, a tag and an error response', () => {
  assert.match(doc.openapi, /^3\./);
  assert.deepEqual(Object.keys(doc.paths).sort(), Object.keys(ROUTES).sort());
  const tagNames = new Set(doc.tags.map((t: { name: string }) => t.name));
  for (const [path, methods] of Object.entries(ROUTES)) {
    assert.deepEqual(Object.keys(doc.paths[path]).sort(), [...methods].sort(), path);
    for (const method of methods) {
      const operation = doc.paths[path][method];
      assert.ok(operation.summary, `${method} ${path} summary`);
      assert.equal(operation.tags.length, 1, `${method} ${path} tag`);
      assert.ok(tagNames.has(operation.tags[0]), `${method} ${path} tag is declared`);
      assert.ok(operation.responses['4XX'] ?? operation.responses['4xx'], `${method} ${path} documents errors`);
    }
  }
});

test('documents the request bodies, the tag filter and the token schemes', () => {
  const createDevice = doc.paths['/devices'].post.requestBody.content['application/json'].schema;
  assert.deepEqual(createDevice.required, ['name']);
  assert.deepEqual(createDevice.properties.type.enum, ['immutable', 'mutable']);
  const tags = doc.paths['/devices'].get.parameters.find((p: { name: string }) => p.name === 'tags');
  assert.match(tags.description, /KEY:VALUE/);
  const created = doc.paths['/devices'].post.responses['201'].content['application/json'].schema;
  assert.ok(created.properties.result.properties.token);
  assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['accountTokenHeader', 'authorizationHeader', 'deviceTokenHeader', 'tokenHeader', 'tokenQuery']);
  assert.equal(doc.paths['/docs/openapi.json'], undefined, 'the document route itself is hidden');
});
