#!/usr/bin/env bash
# Add Seed Studio to the desktop's application menu (for this user), pointing at this folder.
#   ./install-desktop-entry.sh            install (or update after moving the folder)
#   ./install-desktop-entry.sh --remove   remove the menu entry and icon again
# Nothing is copied but the menu entry and the icon; the app stays in this folder.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor"
if [ "${1:-}" = "--remove" ]; then
  rm -f "$apps/seed-studio.desktop" "$icons/256x256/apps/seed-studio.png" "$icons/scalable/apps/seed-studio.svg"
  echo "Seed Studio removed from the application menu (the folder $here is untouched)."
  exit 0
fi
mkdir -p "$apps" "$icons/256x256/apps" "$icons/scalable/apps"
cp "$here/seed-studio.png" "$icons/256x256/apps/seed-studio.png"
cp "$here/seed-studio.svg" "$icons/scalable/apps/seed-studio.svg"
# Exec with the absolute path of this folder's executable (quoted for spaces)
sed -e "s|^Exec=.*|Exec=\"$here/seed-studio\" %f|" -e "s|^Icon=.*|Icon=$here/seed-studio.png|" \
  "$here/seed-studio.desktop" > "$apps/seed-studio.desktop"
chmod 644 "$apps/seed-studio.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" 2>/dev/null || true
echo "Seed Studio added to the application menu: $apps/seed-studio.desktop"
