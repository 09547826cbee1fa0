import * as fs from "fs";
import * as path from "path";

/**
 * The directory of this package (where package.json, scripts/ and stacks/ are), whether the code
 * runs as TypeScript from a checkout or compiled from `dist/` of an installed package.
 */
export function packageRoot(from: string = __dirname): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, "utf8")).name === "utilitarian-deploy")
      return dir;
    if (path.dirname(dir) === dir) throw new Error(`utilitarian-deploy: no package.json of this package above ${from}`);
  }
}
