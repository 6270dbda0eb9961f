// Validate Gateway API, Traefik, Istio, cert-manager and Prometheus Operator objects against their CRD schemas (@kubernetes-models).
// Usage: node validate_crds.mjs FILE...   Prints one line per object; exits 1 on any invalid one.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";

const packages = {
  "gateway.networking.k8s.io": "@kubernetes-models/gateway-api",
  "traefik.io": "@kubernetes-models/traefik",
  "networking.istio.io": "@kubernetes-models/istio",
  "security.istio.io": "@kubernetes-models/istio",
  "cert-manager.io": "@kubernetes-models/cert-manager",
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
};
let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const object of yaml.loadAll(readFileSync(file, "utf8")).filter(Boolean)) {
    const [group, version] = object.apiVersion.split("/");
    const label = `${object.apiVersion} ${object.kind}/${object.metadata?.name}`;
    let Model;
    try { Model = (await import(`${packages[group]}/${group}/${version}`))[object.kind]; } catch { Model = undefined; }
    if (!packages[group] || !Model) { console.log(`UNKNOWN ${label}`); failed++; continue; }
    try { new Model(object).validate(); console.log(`VALID ${label}`); }
    catch (error) { console.log(`INVALID ${label}: ${error.message}`); failed++; }
  }
}
process.exit(failed ? 1 : 0);
