// Signing in at an OpenID Connect issuer from the console: the
// authorization-code flow with PKCE (RFC 7636), as a public client. The
// console never holds a client secret; the code verifier lives in this tab's
// session storage between leaving for the issuer and coming back.

const PENDING = 'baton-oidc-pending';

function base64url(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Where the issuer sends the user back: the console itself. */
function redirectUri() {
  return `${location.origin}/console/`;
}

/** Leaves for the issuer's sign-in page. `oidc` is what GET /v1/sign-in says about the issuer. */
export async function startSignIn(oidc) {
  if (!globalThis.crypto?.subtle) throw new Error('signing in at the issuer needs a secure page: open the console over https (or on localhost)');
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, tokenEndpoint: oidc.token_endpoint, clientId: oidc.client_id, hash: location.hash }));
  const url = new URL(oidc.authorization_endpoint);
  for (const [name, value] of Object.entries({
    response_type: 'code',
    client_id: oidc.client_id,
    redirect_uri: redirectUri(),
    scope: oidc.scopes || 'openid',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  })) url.searchParams.set(name, value);
  location.assign(url.toString());
}

/**
 * When the page is the issuer's answer (`?code=...&state=...`, or `?error=...`),
 * trades the code for an access token and returns it; otherwise returns null.
 * The answer's parameters are taken off the address either way.
 */
export async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return null;
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || 'null');
  sessionStorage.removeItem(PENDING);
  history.replaceState(null, '', `${location.pathname}${pending?.hash || location.hash}`);
  if (params.has('error')) throw new Error(`the issuer refused the sign-in: ${params.get('error_description') || params.get('error')}`);
  if (!pending || params.get('state') !== pending.state) throw new Error('this sign-in answer is not for the sign-in this page started (its state differs); sign in again');
  const response = await fetch(pending.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: redirectUri(),
      client_id: pending.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) throw new Error(`the issuer gave no token: ${answer.error_description || answer.error || `HTTP ${response.status}`}`);
  return answer.access_token;
}
