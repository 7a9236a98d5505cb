// The OpenID Provider the single sign-on tests sign in at: panva's oidc-provider (OpenID
// Certified), on 127.0.0.1 over plain HTTP, with its built-in login and consent pages.
//
//   node tests/oidc/provider.mjs --port 4000        (or OIDC_PROVIDER_PORT=4000)
//
// Issuer http://127.0.0.1:<port>. Clients register themselves (RFC 7591, POST /reg, no initial
// access token). Any login and password sign in: the login becomes `sub`; a login containing
// "@" is also the email (lower-cased), verified unless it starts with "unverified." (then the
// email is the rest). The ID token carries email, email_verified and name itself.
//
// Test controls, beside the provider's own routes:
//   POST /__test__/tamper  {"mode": "..."}  the next token response's id_token is rewritten:
//        wrong_audience, expired, bad_signature, wrong_nonce or wrong_issuer (see TAMPERING)
//   POST /__test__/reset                    forgets a pending mode
//
// With --exit-on-stdin-close it exits when its standard input closes, so it never outlives the
// process that started it. Logs go to stderr; SIGTERM stops it.

import { randomBytes, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import { CompactSign, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

const { values: options } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PROVIDER_PORT },
    'exit-on-stdin-close': { type: 'boolean', default: false },
  },
});
const port = Number.parseInt(options.port ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('provider.mjs: give the port with --port or OIDC_PROVIDER_PORT');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

function log(message) {
  process.stderr.write(`[openid-provider] ${message}\n`);
}

// --- keys ------------------------------------------------------------------------------------

const SIGNING_ALG = 'RS256';

async function newSigningKey(kid) {
  const { privateKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(privateKey)), kid, alg: SIGNING_ALG, use: 'sig' } };
}

const signingKey = await newSigningKey(randomUUID());

// --- accounts --------------------------------------------------------------------------------

const UNVERIFIED = 'unverified.';

function capitalised(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** The claims of the person who typed `login` at the login form. */
function claimsFor(login) {
  const claims = { sub: login };
  const unverified = login.startsWith(UNVERIFIED);
  const address = unverified ? login.slice(UNVERIFIED.length) : login;
  if (address.includes('@')) {
    claims.email = address.toLowerCase();
    claims.email_verified = !unverified;
  }
  claims.name = capitalised(address.split('@')[0]);
  return claims;
}

async function findAccount(ctx, id) {
  return { accountId: id, claims: async () => claimsFor(id) };
}

// --- the provider ----------------------------------------------------------------------------

const provider = new Provider(issuer, {
  findAccount,
  jwks: { keys: [signingKey.jwk] },
  // Signed cookies; oidc-provider marks them Secure only on HTTPS requests, so they work here.
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    registration: { enabled: true, initialAccessToken: false },
    devInteractions: { enabled: true },
  },
  scopes: ['openid', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // By default the scope claims go to userinfo only when an access token is issued with the ID
  // token; relying parties here read them from the ID token.
  conformIdTokenClaims: false,
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    id_token_signed_response_alg: SIGNING_ALG,
    token_endpoint_auth_method: 'client_secret_basic',
  },
  // PKCE is verified when the client sends a code_challenge, and not demanded when it does not
  // (oidc-provider's default demands it of public clients and FAPI 2.0).
  pkce: { required: () => false },
  ttl: {
    AccessToken: 60 * 60,
    AuthorizationCode: 60,
    IdToken: 60 * 60,
    Interaction: 60 * 60,
    Session: 60 * 60,
    Grant: 60 * 60,
  },
});

// --- tampering ---------------------------------------------------------------------------------

function epoch() {
  return Math.floor(Date.now() / 1000);
}

function decodedClaims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

async function signed(header, claims, privateKey) {
  return new CompactSign(Buffer.from(JSON.stringify(claims))).setProtectedHeader(header).sign(privateKey);
}

/** Each mode: how it rewrites an ID token (its protected header and claims) into a new one. */
const TAMPERING = {
  // Signed by the real key, for another client.
  wrong_audience: (header, claims) => signed(header, { ...claims, aud: 'someone-else' }, signingKey.privateKey),
  // Signed by the real key, expired an hour ago.
  expired: (header, claims) => {
    const now = epoch();
    return signed(header, { ...claims, iat: now - 7200, exp: now - 3600 }, signingKey.privateKey);
  },
  // Same claims and kid, signed by a key nobody published.
  bad_signature: async (header, claims) => {
    const impostor = await newSigningKey(signingKey.kid);
    return signed(header, claims, impostor.privateKey);
  },
  // Signed by the real key, answering another authorization request.
  wrong_nonce: (header, claims) =>
    signed(header, { ...claims, nonce: randomBytes(16).toString('base64url') }, signingKey.privateKey),
  // Signed by the real key, claiming another issuer.
  wrong_issuer: (header, claims) => signed(header, { ...claims, iss: 'http://evil.example' }, signingKey.privateKey),
};

let pendingMode = null;

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

async function testControls(ctx) {
  if (ctx.method !== 'POST') {
    ctx.status = 405;
    return;
  }
  if (ctx.path === '/__test__/reset') {
    pendingMode = null;
    ctx.body = { mode: null };
    return;
  }
  if (ctx.path === '/__test__/tamper') {
    let mode;
    try {
      ({ mode } = await readJson(ctx.req));
    } catch {
      mode = undefined;
    }
    if (!Object.hasOwn(TAMPERING, mode)) {
      ctx.status = 400;
      ctx.body = { error: `mode must be one of ${Object.keys(TAMPERING).join(', ')}` };
      return;
    }
    pendingMode = mode;
    log(`the next ID token from the token endpoint will be tampered with: ${mode}`);
    ctx.body = { mode };
    return;
  }
  ctx.status = 404;
}

provider.use(async (ctx, next) => {
  // Browsers ask for one: an answer keeps a 404 out of their consoles.
  if (ctx.path === '/favicon.ico') {
    ctx.status = 204;
    return;
  }
  if (ctx.path.startsWith('/__test__/')) {
    await testControls(ctx);
    log(`${ctx.method} ${ctx.path} ${ctx.status}`);
    return;
  }
  await next();
  log(`${ctx.method} ${ctx.path} ${ctx.status}`);
  const body = ctx.body;
  if (pendingMode && ctx.oidc?.route === 'token' && ctx.status === 200 && typeof body?.id_token === 'string') {
    const mode = pendingMode;
    pendingMode = null;
    body.id_token = await TAMPERING[mode](decodeProtectedHeader(body.id_token), decodedClaims(body.id_token));
    log(`tampered with the ID token: ${mode}`);
  }
  // The built-in pages import a web font: tests keep off the network.
  if (ctx.response.is('html') && typeof body === 'string') {
    ctx.body = body.replace(/@import url\(https?:[^)]*\);?/g, '');
  }
});

provider.on('server_error', (ctx, error) => log(`server error: ${error.stack ?? error}`));
provider.on('grant.error', (ctx, error) => log(`token endpoint error: ${error.message} ${error.error_detail ?? ''}`));
provider.on('authorization.error', (ctx, error) =>
  log(`authorization error: ${error.message} ${error.error_detail ?? ''}`),
);
provider.on('registration_create.error', (ctx, error) =>
  log(`registration error: ${error.message} ${error.error_detail ?? ''}`),
);

// --- serving -----------------------------------------------------------------------------------

const server = http.createServer(provider.callback());

function stop(signal) {
  log(`${signal}: stopping`);
  server.close();
  server.closeAllConnections();
  process.exit(0);
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
if (options['exit-on-stdin-close']) {
  process.stdin.on('end', () => stop('standard input closed'));
  process.stdin.on('error', () => stop('standard input closed'));
  process.stdin.resume();
}

server.on('error', (error) => {
  log(`cannot listen on 127.0.0.1:${port}: ${error.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => log(`issuer ${issuer}`));
