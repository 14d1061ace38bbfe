// The pages' Leaflet map (vendored, global `L`): the configured tiles, or none at all — shapes
// and markers still show on a plain background when the tile URL is empty.

const FALLBACK = { tile_url: '', center: [56.1567, 10.2039] };

/// A Leaflet map in the element with id `id`, centred where the configuration says.
export async function baseMap(id, zoom = 13) {
  const config = await fetch('/web/config.json').then((r) => r.json()).catch(() => FALLBACK);
  const map = L.map(id).setView(config.center, zoom);
  if (config.tile_url) L.tileLayer(config.tile_url, { maxZoom: 19, attribution: '© OpenStreetMap' }).addTo(map);
  return map;
}
