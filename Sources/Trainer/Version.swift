public enum TrainerVersion { public static let string = "0.1.0" }
