import { ensureTools } from "./tools.mjs";
ensureTools();
