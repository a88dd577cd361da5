// padlab panel: passkeys (WebAuthn). Options come from the server as JSON with base64url fields.
"use strict";

const b64 = {
  toBytes(text) {
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  },
  fromBytes(buffer) {
    const text = btoa(String.fromCharCode(...new Uint8Array(buffer)));
    return text.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

async function post(url, csrf, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
    body: JSON.stringify(body || {}),
    credentials: "same-origin",
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error + (data.fix ? "; " + data.fix : ""));
  return data;
}

function say(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

async function addPasskey(button) {
  const status = document.getElementById("passkey-status");
  try {
    const options = await post("/passkeys/register/options", button.dataset.csrf);
    options.challenge = b64.toBytes(options.challenge);
    options.user.id = b64.toBytes(options.user.id);
    (options.excludeCredentials || []).forEach((c) => { c.id = b64.toBytes(c.id); });
    const cred = await navigator.credentials.create({ publicKey: options });
    const credential = {
      id: cred.id,
      rawId: b64.fromBytes(cred.rawId),
      type: cred.type,
      response: {
        clientDataJSON: b64.fromBytes(cred.response.clientDataJSON),
        attestationObject: b64.fromBytes(cred.response.attestationObject),
        transports: cred.response.getTransports ? cred.response.getTransports() : [],
      },
      clientExtensionResults: cred.getClientExtensionResults(),
    };
    const label = document.getElementById("passkey-label").value || "passkey";
    await post("/passkeys/register", button.dataset.csrf, { credential, label });
    window.location.reload();
  } catch (err) {
    say(status, "Passkey not added: " + err.message);
  }
}

async function signInWithPasskey(button) {
  const status = document.getElementById("passkey-status");
  try {
    const options = await post("/passkeys/login/options", button.dataset.csrf);
    options.challenge = b64.toBytes(options.challenge);
    (options.allowCredentials || []).forEach((c) => { c.id = b64.toBytes(c.id); });
    const cred = await navigator.credentials.get({ publicKey: options });
    const credential = {
      id: cred.id,
      rawId: b64.fromBytes(cred.rawId),
      type: cred.type,
      response: {
        clientDataJSON: b64.fromBytes(cred.response.clientDataJSON),
        authenticatorData: b64.fromBytes(cred.response.authenticatorData),
        signature: b64.fromBytes(cred.response.signature),
        userHandle: cred.response.userHandle ? b64.fromBytes(cred.response.userHandle) : null,
      },
      clientExtensionResults: cred.getClientExtensionResults(),
    };
    const done = await post("/passkeys/login", button.dataset.csrf, { credential, next: button.dataset.next });
    window.location.assign(done.next);
  } catch (err) {
    say(status, "Passkey sign-in failed: " + err.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const add = document.getElementById("passkey-add");
  if (add) add.addEventListener("click", () => addPasskey(add));
  const signIn = document.getElementById("passkey-sign-in");
  if (signIn) signIn.addEventListener("click", () => signInWithPasskey(signIn));
});
