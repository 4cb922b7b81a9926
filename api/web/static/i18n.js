// The page's words, one dictionary per language. Vietnamese is the default; English is a
// click away (the choice is kept in localStorage). Keys are "area.what"; "{name}" marks
// a value filled in by t(key, {name: ...}). A key missing in English falls back to
// Vietnamese, then to the key itself, so a gap shows instead of breaking the page.

const LANGUAGE_KEY = "sanitrack.lang";

export const dictionaries = {
  vi: {
    "lang.label": "Ngôn ngữ",
    "common.cancel": "Huỷ",
    "common.close": "Đóng",
    "common.loading": "Đang tải…",
    "common.reload": "Tải lại trang",
    "sidebar.left": "Xe và tuyến",
    "map.label": "Bản đồ xe và tuyến thu gom",

    "login.title": "Đăng nhập bản đồ điều phối",
    "login.tenant": "Mã công ty",
    "login.username": "Tên đăng nhập",
    "login.password": "Mật khẩu",
    "login.submit": "Đăng nhập",
    "login.logout": "Đăng xuất",
    "login.missing": "Vui lòng nhập {field}.",
    "login.wrong": "Sai mã công ty, tên đăng nhập hoặc mật khẩu.",
    "login.locked": "Tài khoản đang bị tạm khoá.",
    "login.locked_until": "Tài khoản bị tạm khoá đến {until}.",
    "login.too_many": "Đăng nhập sai quá nhiều lần; vui lòng thử lại sau.",
    "login.too_many_wait": "Đăng nhập sai quá nhiều lần; thử lại sau {s} giây.",
    "login.unreachable": "Không kết nối được máy chủ. Kiểm tra mạng rồi thử lại.",
    "login.failed": "Đăng nhập không thành công",
    "login.session_ended": "Phiên làm việc đã hết hạn; vui lòng đăng nhập lại.",

    "live.connecting": "Đang kết nối…",
    "live.live": "Trực tiếp",
    "live.reconnecting": "Mất kết nối, thử lại sau {s} giây",
    "live.stopped": "Ngắt kết nối",
    "live.error": "Lỗi luồng dữ liệu trực tiếp",

    "search.label": "Tìm xe hoặc nhân viên",
    "search.placeholder": "Biển số xe, tên nhân viên",
    "search.go": "Tìm",
    "search.not_found": "Không tìm thấy xe hoặc nhân viên này trên bản đồ.",

    "street.one_way": "một chiều",
    "geofence.depot": "Bãi xe",
    "geofence.transfer_station": "Trạm trung chuyển",
    "geofence.landfill": "Bãi chôn lấp",
    "geofence.restricted": "Khu vực cấm",

    "state.moving": "Đang chạy",
    "state.stopped": "Đang dừng",
    "state.offline": "Mất tín hiệu",

    "vehicle.truck": "Xe",
    "vehicle.phone": "Điện thoại",
    "vehicle.code": "Biển số",
    "vehicle.name": "Tên xe",
    "vehicle.device": "Thiết bị",
    "vehicle.staff": "Nhân viên",
    "vehicle.state": "Trạng thái",
    "vehicle.speed": "Tốc độ",
    "vehicle.heading": "Hướng",
    "vehicle.last_fix": "Tín hiệu cuối",
    "vehicle.position": "Toạ độ",
    "vehicle.capacity": "Tải trọng",
    "vehicle.open_alerts": "Cảnh báo",
    "vehicle.no_alerts": "Không có",
    "vehicle.no_position": "Xe này chưa có vị trí trên bản đồ.",

    "track.title": "Xem lại hành trình",
    "track.from": "Từ",
    "track.to": "Đến",
    "track.draw": "Vẽ hành trình",
    "track.clear": "Xoá",
    "track.play": "Phát",
    "track.pause": "Tạm dừng",
    "track.position": "Vị trí phát lại",
    "track.speed": "Tốc độ phát",
    "track.points": "{n} điểm (mỗi {bucket} giây).",
    "track.empty": "Không có dữ liệu trong khoảng thời gian này.",
    "track.bad_range": "Thời gian bắt đầu phải trước thời gian kết thúc.",
    "track.no_vehicle": "Thiết bị này không gắn với xe nào: không có hành trình xe.",
    "track.start": "Bắt đầu",
    "track.end": "Kết thúc",

    "day.title": "Báo cáo ngày",
    "day.date": "Ngày",
    "day.show": "Xem",
    "day.distance": "Quãng đường",
    "day.driving": "Thời gian chạy",
    "day.stopped": "Thời gian dừng",
    "day.max_speed": "Tốc độ tối đa",
    "day.avg_speed": "Tốc độ TB khi chạy",
    "day.trips": "Số chuyến",
    "day.stops": "Số lần dừng",
    "day.fixes": "Số điểm GPS",
    "day.first_last": "Tín hiệu đầu – cuối",
    "day.time": "Thời gian",
    "day.duration": "Thời lượng",
    "day.trips_list": "Các chuyến ({n})",
    "day.stops_list": "Các lần dừng ({n})",
    "day.show_on_map": "Xem trên bản đồ",

    "routes.title": "Tuyến hôm nay",
    "routes.search": "Lọc theo tên tuyến hoặc xe",
    "routes.in_view": "Chỉ tuyến trong khung bản đồ",
    "routes.route": "Tuyến",
    "routes.choose": "— Chọn tuyến để xem —",
    "routes.count": "{shown}/{total} tuyến",
    "routes.count_loading": "{shown}/{total} tuyến (đang tải…)",
    "routes.stops_n": "{n} điểm",
    "routes.vehicle": "Xe",
    "routes.corridor": "hành lang",
    "routes.stop": "Điểm",
    "routes.planned": "Dự kiến đến",
    "routes.window": "Khung giờ",
    "routes.status": "Trạng thái",
    "routes.visited_at": "Đến lúc",
    "routes.served_share": "Tỉ lệ đã phục vụ",
    "routes.corridor_share": "Đi đúng hành lang",
    "routes.alerts": "Cảnh báo",
    "routes.no_alerts": "không có",

    "route_status.planned": "đã lên kế hoạch",
    "route_status.scheduled": "đã lên lịch",
    "route_status.assigned": "đã giao",
    "route_status.in_progress": "đang chạy",
    "route_status.active": "đang chạy",
    "route_status.completed": "đã xong",
    "route_status.done": "đã xong",
    "route_status.cancelled": "đã huỷ",

    "stop_kind.collect": "Thu gom",
    "stop_kind.unload": "Đổ rác",
    "stop_status.pending": "Chưa đến",
    "stop_status.visited": "Đã thu gom",
    "stop_status.late": "Thu gom trễ",
    "stop_status.probable": "Có thể đã thu",
    "stop_status.missed": "Bỏ sót",

    "alerts.title": "Cảnh báo",
    "alerts.none": "Không có cảnh báo nào đang mở.",
    "alerts.none_short": "Không có cảnh báo",
    "alerts.show_all": "Hiện tất cả",
    "alerts.only_kind": "Chỉ hiện",
    "alerts.counter_title": "{kind}: {open} chưa xử lý, {acknowledged} đã xác nhận",
    "alerts.new": "Cảnh báo mới",
    "alerts.locate": "xem trên bản đồ",
    "alerts.no_position": "Không rõ vị trí của cảnh báo này.",
    "alerts.acknowledge": "Xác nhận",
    "alerts.assign": "Giao việc",
    "alerts.resolve": "Đóng",
    "alerts.confirm_acknowledge": "Xác nhận đã biết",
    "alerts.confirm_assign": "Giao",
    "alerts.confirm_resolve": "Đóng cảnh báo",
    "alerts.note": "Ghi chú",
    "alerts.note_hint": "Ghi chú (không bắt buộc)",
    "alerts.resolve_note_hint": "Đã xử lý thế nào?",
    "alerts.staff": "Nhân viên",
    "alerts.choose_staff": "Chọn nhân viên",
    "alerts.assigned_to": "Giao cho",
    "alert_state.open": "Chưa xử lý",
    "alert_state.acknowledged": "Đã xác nhận",
    "alert_state.resolved": "Đã đóng",
    "severity.info": "Thông tin",
    "severity.warning": "Cảnh báo",
    "severity.critical": "Nghiêm trọng",

    "kind.wrong_route": "Đi sai tuyến",
    "kind.missed_stop": "Bỏ sót điểm thu gom",
    "kind.offline": "Mất tín hiệu",
    "kind.speeding": "Chạy quá tốc độ",
    "kind.idle": "Dừng quá lâu",
    "kind.geofence_enter": "Vào vùng giới hạn",
    "kind.geofence_exit": "Ra khỏi vùng",
    "kind.gps_jump": "GPS nhảy bất thường",
    "kind_short.wrong_route": "Sai tuyến",
    "kind_short.missed_stop": "Bỏ sót",
    "kind_short.offline": "Mất tín hiệu",
    "kind_short.speeding": "Quá tốc độ",
    "kind_short.idle": "Dừng lâu",
    "kind_short.geofence_enter": "Vào vùng",
    "kind_short.geofence_exit": "Ra vùng",
    "kind_short.gps_jump": "GPS nhảy",

    "error.start_failed": "Không mở được bản đồ",
    "error.basemap": "Không tải được nền bản đồ",
    "error.routes": "Không tải được danh sách tuyến",
    "error.load_failed": "Không tải được",
    "error.action_failed": "Không thực hiện được",
  },

  en: {
    "lang.label": "Language",
    "common.cancel": "Cancel",
    "common.close": "Close",
    "common.loading": "Loading…",
    "common.reload": "Reload the page",
    "sidebar.left": "Vehicles and routes",
    "map.label": "Map of vehicles and collection routes",

    "login.title": "Sign in to the dispatch map",
    "login.tenant": "Company code",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.logout": "Sign out",
    "login.missing": "Please enter the {field}.",
    "login.wrong": "Wrong company code, username or password.",
    "login.locked": "The account is locked for now.",
    "login.locked_until": "The account is locked until {until}.",
    "login.too_many": "Too many failed sign-ins; please try again later.",
    "login.too_many_wait": "Too many failed sign-ins; try again in {s} seconds.",
    "login.unreachable": "Cannot reach the server. Check the network and try again.",
    "login.failed": "Sign-in failed",
    "login.session_ended": "Your session has ended; please sign in again.",

    "live.connecting": "Connecting…",
    "live.live": "Live",
    "live.reconnecting": "Connection lost, retrying in {s} s",
    "live.stopped": "Disconnected",
    "live.error": "Live feed error",

    "search.label": "Find a vehicle or a staff member",
    "search.placeholder": "Plate or staff name",
    "search.go": "Find",
    "search.not_found": "No vehicle or staff member by that name is on the map.",

    "street.one_way": "one way",
    "geofence.depot": "Depot",
    "geofence.transfer_station": "Transfer station",
    "geofence.landfill": "Landfill",
    "geofence.restricted": "Restricted zone",

    "state.moving": "Moving",
    "state.stopped": "Stopped",
    "state.offline": "Offline",

    "vehicle.truck": "Truck",
    "vehicle.phone": "Phone",
    "vehicle.code": "Plate",
    "vehicle.name": "Name",
    "vehicle.device": "Device",
    "vehicle.staff": "Staff",
    "vehicle.state": "State",
    "vehicle.speed": "Speed",
    "vehicle.heading": "Heading",
    "vehicle.last_fix": "Last fix",
    "vehicle.position": "Position",
    "vehicle.capacity": "Capacity",
    "vehicle.open_alerts": "Alerts",
    "vehicle.no_alerts": "None",
    "vehicle.no_position": "This vehicle has no position on the map yet.",

    "track.title": "Track replay",
    "track.from": "From",
    "track.to": "To",
    "track.draw": "Draw track",
    "track.clear": "Clear",
    "track.play": "Play",
    "track.pause": "Pause",
    "track.position": "Replay position",
    "track.speed": "Replay speed",
    "track.points": "{n} points (one per {bucket} s).",
    "track.empty": "No data in this time range.",
    "track.bad_range": "The start must be before the end.",
    "track.no_vehicle": "This device belongs to no vehicle: there is no vehicle track.",
    "track.start": "Start",
    "track.end": "End",

    "day.title": "Day report",
    "day.date": "Date",
    "day.show": "Show",
    "day.distance": "Distance",
    "day.driving": "Driving time",
    "day.stopped": "Stopped time",
    "day.max_speed": "Top speed",
    "day.avg_speed": "Average moving speed",
    "day.trips": "Trips",
    "day.stops": "Stops",
    "day.fixes": "GPS fixes",
    "day.first_last": "First – last fix",
    "day.time": "Time",
    "day.duration": "Duration",
    "day.trips_list": "Trips ({n})",
    "day.stops_list": "Stops ({n})",
    "day.show_on_map": "Show on the map",

    "routes.title": "Today's routes",
    "routes.search": "Filter by route or vehicle",
    "routes.in_view": "Only routes in the map view",
    "routes.route": "Route",
    "routes.choose": "— Choose a route —",
    "routes.count": "{shown}/{total} routes",
    "routes.count_loading": "{shown}/{total} routes (loading…)",
    "routes.stops_n": "{n} stops",
    "routes.vehicle": "Vehicle",
    "routes.corridor": "corridor",
    "routes.stop": "Stop",
    "routes.planned": "Planned arrival",
    "routes.window": "Window",
    "routes.status": "Status",
    "routes.visited_at": "Arrived",
    "routes.served_share": "Served",
    "routes.corridor_share": "In corridor",
    "routes.alerts": "Alerts",
    "routes.no_alerts": "none",

    "route_status.planned": "planned",
    "route_status.scheduled": "scheduled",
    "route_status.assigned": "assigned",
    "route_status.in_progress": "in progress",
    "route_status.active": "in progress",
    "route_status.completed": "completed",
    "route_status.done": "completed",
    "route_status.cancelled": "cancelled",

    "stop_kind.collect": "Collection",
    "stop_kind.unload": "Unloading",
    "stop_status.pending": "Pending",
    "stop_status.visited": "Visited",
    "stop_status.late": "Visited late",
    "stop_status.probable": "Probably visited",
    "stop_status.missed": "Missed",

    "alerts.title": "Alerts",
    "alerts.none": "No open alerts.",
    "alerts.none_short": "No alerts",
    "alerts.show_all": "Show all",
    "alerts.only_kind": "Showing only",
    "alerts.counter_title": "{kind}: {open} open, {acknowledged} acknowledged",
    "alerts.new": "New alert",
    "alerts.locate": "show on the map",
    "alerts.no_position": "Where this alert happened is not known.",
    "alerts.acknowledge": "Acknowledge",
    "alerts.assign": "Assign",
    "alerts.resolve": "Resolve",
    "alerts.confirm_acknowledge": "Acknowledge",
    "alerts.confirm_assign": "Assign",
    "alerts.confirm_resolve": "Resolve alert",
    "alerts.note": "Note",
    "alerts.note_hint": "Note (optional)",
    "alerts.resolve_note_hint": "What was done?",
    "alerts.staff": "Staff member",
    "alerts.choose_staff": "Choose a staff member",
    "alerts.assigned_to": "Assigned to",
    "alert_state.open": "Open",
    "alert_state.acknowledged": "Acknowledged",
    "alert_state.resolved": "Resolved",
    "severity.info": "Information",
    "severity.warning": "Warning",
    "severity.critical": "Critical",

    "kind.wrong_route": "Off route",
    "kind.missed_stop": "Missed stop",
    "kind.offline": "Offline",
    "kind.speeding": "Speeding",
    "kind.idle": "Idle too long",
    "kind.geofence_enter": "Entered a zone",
    "kind.geofence_exit": "Left a zone",
    "kind.gps_jump": "GPS jump",
    "kind_short.wrong_route": "Off route",
    "kind_short.missed_stop": "Missed",
    "kind_short.offline": "Offline",
    "kind_short.speeding": "Speeding",
    "kind_short.idle": "Idle",
    "kind_short.geofence_enter": "Zone in",
    "kind_short.geofence_exit": "Zone out",
    "kind_short.gps_jump": "GPS jump",

    "error.start_failed": "Could not open the map",
    "error.basemap": "Could not load the base map",
    "error.routes": "Could not load the routes",
    "error.load_failed": "Could not load",
    "error.action_failed": "Could not do that",
  },
};

const listeners = [];
let current = storedLanguage();

function storedLanguage() {
  try {
    const stored = localStorage.getItem(LANGUAGE_KEY);
    return stored in dictionaries ? stored : "vi";
  } catch {
    return "vi";
  }
}

export function language() {
  return current;
}

/** The BCP 47 locale for numbers and dates in the current language. */
export function locale() {
  return current === "vi" ? "vi-VN" : "en-GB";
}

export function has(key) {
  return key in dictionaries[current] || key in dictionaries.vi;
}

export function t(key, values = {}) {
  const text = dictionaries[current][key] ?? dictionaries.vi[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** t(key), or ``fallback`` for a value the dictionaries do not know (a new status). */
export function tOr(key, fallback) {
  return has(key) ? t(key) : String(fallback ?? "");
}

export function setLanguage(lang) {
  if (!(lang in dictionaries)) return;
  const changed = lang !== current;
  current = lang;
  try {
    localStorage.setItem(LANGUAGE_KEY, lang);
  } catch {
    // Not kept across visits then; the page still switches.
  }
  document.documentElement.lang = lang;
  translatePage(document);
  if (changed) for (const listener of listeners) listener(lang);
}

export function onLanguageChange(listener) {
  listeners.push(listener);
}

/** Fill every [data-i18n], [data-i18n-placeholder|title|aria-label] under ``root``. */
export function translatePage(root) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const [attribute, data] of [
    ["placeholder", "i18nPlaceholder"],
    ["title", "i18nTitle"],
    ["aria-label", "i18nAriaLabel"],
  ]) {
    for (const node of root.querySelectorAll(`[data-i18n-${attribute}]`)) {
      node.setAttribute(attribute, t(node.dataset[data]));
    }
  }
}
