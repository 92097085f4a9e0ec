// Who the signed-in token belongs to (SCIM Me), asked once per token and shared by the pages.
import { get, session } from "./api.js";

const ME = "/api/2.0/preview/scim/v2/Me";
let cached = { token: null, promise: null };

// The SCIM Me answer as the UI uses it. A service principal's Me carries its applicationId;
// admins are the members of the built-in "admins" group.
export function describe(me) {
  const groups = (me.groups || []).map((g) => g.display).filter(Boolean);
  const sp = Boolean(me.applicationId);
  return {
    id: me.id || "",
    name: me.userName || me.applicationId || "",
    displayName: me.displayName || me.userName || "",
    kind: sp ? "service_principal" : "user",
    applicationId: me.applicationId || null,
    groups,
    isAdmin: groups.includes("admins"),
  };
}

export function whoami() {
  const token = session.token;
  if (!token) return Promise.resolve(null);
  if (cached.token !== token) {
    const promise = get(ME).then(describe);
    cached = { token, promise };
    promise.catch(() => { if (cached.promise === promise) cached = { token: null, promise: null }; });
  }
  return cached.promise;
}

export const KIND_LABEL = { user: "User", service_principal: "Service principal" };
