// The respondent's side of a collabzone survey: split answers into Shamir shares over the
// compute servers' prime field (Web Crypto randomness, BigInt arithmetic), seal each
// server's shares to its P-256 key (ECDH, HKDF-SHA-256, AES-256-GCM) and post them with the
// invitation (the URL fragment) to the zone. No plain answer ever leaves this page.
"use strict";

(() => {
  const root = document.getElementById("survey");
  const status = document.getElementById("status");
  const button = document.getElementById("send");
  if (!root || !button) return;
  const P = BigInt(root.dataset.modulus);
  const ONE = BigInt(root.dataset.one);
  const T = Number(root.dataset.threshold);
  const KEYS = JSON.parse(root.dataset.keys);
  const SURVEY = root.dataset.survey;
  const BITS = P.toString(2).length;
  const BYTES = Math.ceil(BITS / 8);
  const MASK = (1n << BigInt(BITS)) - 1n;
  const encoder = new TextEncoder();

  // a uniform field element: random bits of P's length, rejected until below P
  function randomElement() {
    const bytes = new Uint8Array(BYTES);
    for (;;) {
      crypto.getRandomValues(bytes);
      let x = 0n;
      for (const b of bytes) x = (x << 8n) | BigInt(b);
      x &= MASK;
      if (x < P) return x;
    }
  }

  // Shamir: a random polynomial of degree T with constant term v, at x = 1 .. n
  function split(v, n) {
    const coefficients = [v];
    for (let k = 0; k < T; k++) coefficients.push(randomElement());
    const shares = [];
    for (let x = 1; x <= n; x++) {
      const X = BigInt(x);
      let acc = 0n;
      let power = 1n;
      for (const c of coefficients) {
        acc = (acc + c * power) % P;
        power = (power * X) % P;
      }
      shares.push(acc);
    }
    return shares;
  }

  const toBase64 = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)));
  const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

  async function seal(publicKey, shares, index) {
    const info = encoder.encode(`collabzone survey v1|${SURVEY}|${index}`);
    const curve = { name: "ECDH", namedCurve: "P-256" };
    const peer = await crypto.subtle.importKey("raw", fromBase64(publicKey), curve, false, []);
    const ephemeral = await crypto.subtle.generateKey(curve, true, ["deriveBits"]);
    const secret = await crypto.subtle.deriveBits(
      { name: "ECDH", public: peer }, ephemeral.privateKey, 256);
    const material = await crypto.subtle.importKey("raw", secret, "HKDF", false, ["deriveKey"]);
    const key = await crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info },
      material, { name: "AES-GCM", length: 256 }, false, ["encrypt"]);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const body = encoder.encode(JSON.stringify(shares.map((s) => s.toString())));
    const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: info }, key, body);
    return {
      epk: toBase64(await crypto.subtle.exportKey("raw", ephemeral.publicKey)),
      iv: toBase64(iv),
      ct: toBase64(ct),
    };
  }

  async function send() {
    const token = decodeURIComponent(location.hash.slice(1));
    if (!token) {
      status.textContent = "Open this page from your invitation link.";
      return;
    }
    const vector = [];
    for (const fieldset of document.querySelectorAll("fieldset")) {
      const options = fieldset.querySelectorAll("input[type=radio]");
      const chosen = fieldset.querySelector("input[type=radio]:checked");
      if (!chosen) {
        status.textContent = "Please answer every question.";
        fieldset.querySelector("input").focus();
        return;
      }
      for (const option of options) vector.push(option === chosen ? ONE : 0n);
    }
    button.disabled = true;
    status.textContent = "Splitting and sealing your answers…";
    const perServer = KEYS.map(() => []);
    for (const value of vector) {
      split(value, KEYS.length).forEach((share, i) => perServer[i].push(share));
    }
    const sealed = await Promise.all(KEYS.map((key, i) => seal(key, perServer[i], i)));
    const response = await fetch(`/survey/${SURVEY}/answers`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token, sealed }),
    });
    if (response.ok) {
      document.getElementById("answers").remove();
      status.textContent = "Thank you: your answers were received.";
    } else {
      let message = `the zone refused (${response.status})`;
      try { message = (await response.json()).error.message; } catch (e) { /* keep */ }
      status.textContent = `Not sent: ${message}`;
      button.disabled = false;
    }
  }

  button.addEventListener("click", () => {
    send().catch((error) => {
      status.textContent = `Not sent: ${error}`;
      button.disabled = false;
    });
  });
  document.getElementById("answers").addEventListener("submit", (e) => e.preventDefault());
})();
